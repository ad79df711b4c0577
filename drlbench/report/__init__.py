"""The report: the paper's Tables 1–3 and Figures 1–3 from stored cells, next to the published numbers,
and the paper's findings re-tested on our numbers.

`write_report(store_or_cells, out_dir)` writes report.md and PNG figures. Every verdict is computed
from the cells given; a missing agent or variant is shown as missing, never filled in.

Modules, each depending only on those before it: stats (means and intervals), markdown (text), paper (the
published numbers), selection (one cell per agent × variant), verdicts (keep rules), tables, figures (the
only one importing matplotlib, when drawing), resource_findings and findings (the paper's claims), cost,
build (the report assembled).
"""

from drlbench.report.build import write_report
from drlbench.report.cost import task_costs
from drlbench.report.findings import findings
from drlbench.report.markdown import md_table, num
from drlbench.report.paper import paper_results
from drlbench.report.selection import select_cells
from drlbench.report.stats import ratio_ci

__all__ = ["findings", "md_table", "num", "paper_results", "ratio_ci", "select_cells", "task_costs", "write_report"]
