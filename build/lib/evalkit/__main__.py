from evalkit.cli import app

app()
