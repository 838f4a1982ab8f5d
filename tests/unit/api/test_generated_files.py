"""The committed CRDs and API reference are exactly what the models generate today."""

from __future__ import annotations

from api_corpus_cases import REPO

from optikube_operator.api import crdgen, docgen


def test_committed_crds_equal_generated() -> None:
    for name, text in crdgen.rendered_crds().items():
        committed = REPO / "crds" / name
        assert committed.exists(), f"crds/{name} missing: run python -m optikube_operator.api.crdgen"
        assert committed.read_text() == text, (
            f"crds/{name} is stale: run python -m optikube_operator.api.crdgen"
        )
    assert sorted(p.name for p in (REPO / "crds").glob("*.yaml")) == sorted(crdgen.rendered_crds())


def test_committed_chart_crd_templates_equal_generated() -> None:
    chart = REPO / "charts" / "optikube" / "templates" / "crds"
    for name, text in crdgen.chart_crds().items():
        committed = chart / name
        assert committed.exists(), f"{committed} missing: run python -m optikube_operator.api.crdgen"
        assert committed.read_text() == text, (
            f"{committed} is stale: run python -m optikube_operator.api.crdgen"
        )
    assert sorted(p.name for p in chart.glob("*.yaml")) == sorted(crdgen.chart_crds())


def test_committed_api_reference_is_current() -> None:
    committed = REPO / "docs" / "api.md"
    assert committed.read_text() == docgen.render(), (
        "docs/api.md is stale: run python -m optikube_operator.api.docgen"
    )


def test_api_reference_documents_every_spec_section_and_tunable_path() -> None:
    text = docgen.render()
    for section in (
        "`spec.tuning`",
        "`spec.tuning.searchSpace.<key>`",
        "`spec.compression.pruning`",
        "`spec.quantization`",
        "`spec.resources.tolerations[]`",
        "`status.bestTrial`",
    ):
        assert f"### {section}" in text
    assert "| `compression.pruning.sparsity` | float |" in text
    assert "must be > 0 for log scale" in text
