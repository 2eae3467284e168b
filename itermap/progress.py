"""Progress bars for long runs: tqdm in a terminal, throttled widgets in a notebook.

Examples
--------
>>> from itermap.progress import progress_bar
>>> with progress_bar(total=3, desc="steps", disable=True) as bar:
...     bar.update(3)
"""

from ._core._progress import in_notebook, interactive, progress_bar

__all__ = ["in_notebook", "interactive", "progress_bar"]
