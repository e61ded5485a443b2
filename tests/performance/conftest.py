def pytest_configure(config):
    config.addinivalue_line(
        'markers', 'benchmark: runs the side-by-side benchmark harness (slow-ish; deselect '
        'with -m "not benchmark")')
