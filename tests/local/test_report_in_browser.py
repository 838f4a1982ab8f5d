"""Both reports of a real run's output folder, opened in headless Chromium: no console errors, every
plot drawn, each page well under 1 MB, one shared plotly script.

The records are a real `optikube run examples/quickstart.yaml` (its state.json and the pipeline's
results.json, in fixtures/quickstart-run); the reports are written from them by the code under
test. With OPTIKUBE_REPORT_PREVIEW=<png> the job report's screenshot is saved there
(`make report-preview` writes docs/images/report.png).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path
from typing import Any

from headless_chromium import Page, chromium_page

from optikube_operator.api import load_job
from optikube_operator.core import JobSettings
from optikube_operator.local.outputs import write_outputs
from optikube_operator.local.state import RunState
from optikube_operator.reports.job_html import PLOTLY_JS
from optikube_operator.reports.pipeline_html import write_report as write_pipeline_report

FIXTURE = Path(__file__).parent / "fixtures" / "quickstart-run"
QUICKSTART = Path(__file__).parents[2] / "examples" / "quickstart.yaml"
MAX_REPORT_BYTES = 1_000_000

# Which plots a page has and how many of them were drawn (plotly renders SVG into its divs; an
# <img> counts once it decoded).
PLOTS_DRAWN = """(() => {
  const divs = [...document.querySelectorAll('.plotly-graph-div')];
  const images = [...document.images];
  const drawn = d => d.querySelector('svg.main-svg') && d.querySelectorAll('path, rect').length > 0;
  return {
    figures: divs.length,
    drawn: divs.filter(drawn).length,
    images: images.length,
    decoded: images.filter(i => i.complete && i.naturalWidth > 0).length,
    plotly: typeof window.Plotly === 'object',
  };
})()"""


def _output_folder(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """The run's output folder as `optikube run` leaves it, with both reports written anew."""
    out = tmp_path / "quickstart"
    (out / "pipeline").mkdir(parents=True)
    shutil.copy(FIXTURE / "state.json", out / "state.json")
    pipeline_results = json.loads((FIXTURE / "pipeline-results.json").read_text())
    (out / "pipeline" / "results.json").write_text(json.dumps(pipeline_results))
    write_pipeline_report(
        pipeline_results, out / "pipeline" / "report.html", title="optikube pipeline: quickstart"
    )
    job = load_job(QUICKSTART)
    settings = JobSettings.from_spec(job.spec, job.metadata.name or "quickstart")
    results = write_outputs(settings, RunState.load(out, pipeline_results), out)
    return out, results


async def _look(page: Page, report: Path) -> dict[str, Any]:
    await page.open(report)
    # plotly draws after the load event; wait until every figure has its SVG (or give up after 10 s)
    for _ in range(100):
        seen: dict[str, Any] = await page.evaluate(PLOTS_DRAWN)
        if seen["drawn"] == seen["figures"] and seen["decoded"] == seen["images"]:
            break
        await asyncio.sleep(0.1)
    return seen


def test_both_reports_open_without_errors_with_every_plot_drawn(tmp_path: Path) -> None:
    out, results = _output_folder(tmp_path)
    job_report, pipeline_report = out / "report.html", out / "pipeline" / "report.html"
    assert results["artifacts"]["pipelineReport"] == "pipeline/report.html"
    for report in (job_report, pipeline_report):
        assert report.stat().st_size < MAX_REPORT_BYTES, f"{report.name}: {report.stat().st_size} bytes"
    assert [path.name for path in out.rglob("*.js")] == [PLOTLY_JS]  # one shared copy, beside the job report

    async def inspect() -> tuple[dict[str, Any], dict[str, Any], list[str], list[str]]:
        async with chromium_page() as page:
            job = await _look(page, job_report)
            job_errors = list(page.log.errors)
            preview = os.environ.get("OPTIKUBE_REPORT_PREVIEW")
            if preview:
                await page.screenshot(Path(preview))
        async with chromium_page() as page:
            pipeline = await _look(page, pipeline_report)
            pipeline_errors = list(page.log.errors)
        return job, pipeline, job_errors, pipeline_errors

    job, pipeline, job_errors, pipeline_errors = asyncio.run(asyncio.wait_for(inspect(), timeout=120))
    assert job_errors == [] and pipeline_errors == []
    # the study's plots (history, importances, intermediate values) and the baseline-vs-optimized bars
    assert job["plotly"] and job["figures"] == 4 and job["drawn"] == job["figures"]
    # the pipeline's comparison bars and training curves
    assert pipeline["images"] == 2 and pipeline["decoded"] == pipeline["images"]
