"""How clients reach Aetherial: the aiohttp app, REST routes, Socket.IO, OpenAPI, web UI."""
