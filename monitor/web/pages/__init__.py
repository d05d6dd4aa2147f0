"""HTML pages: server-rendered Jinja2 templates, plotly figure specs rendered by the browser."""
