from atom.cli.main import cli

cli(prog_name="atomctl")
