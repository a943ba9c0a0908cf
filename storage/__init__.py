"""Infrastructure adapters: config, MongoDB (PyMongo async), embedded server, pub/sub, limits."""
