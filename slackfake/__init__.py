"""Local Slack stand-in: Web API, Socket Mode websocket, response_url endpoints and a web page.
Imports none of our packages.
"""
