"""Static files of the page (index.html, app.js, app.css), shipped as package data."""
