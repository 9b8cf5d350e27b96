from workers.cli import entry

entry()
