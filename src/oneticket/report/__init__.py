"""Reports: figures laid out like the seed's, and a Markdown + self-contained HTML page."""

from oneticket.report.figures import draw_experiment
from oneticket.report.page import Report, rows_csv, write_report

__all__ = ["Report", "draw_experiment", "rows_csv", "write_report"]
