from oneticket.cli import run

run()
