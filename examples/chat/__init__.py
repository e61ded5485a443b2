"""The greensio chat demo: Flask, a class-based namespace, rooms and a web page."""
