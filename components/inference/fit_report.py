"""The fit of every local model in one line each, for people: where it runs, its weights
and KV cache, the context served against the context asked for, the GPU share it takes.

`tools/render.py` prints `fit_lines` on every render (a shortened context also as a
`warning:` line on stderr) and puts `fit_table` in `summary.md`. Pure functions of config.
"""

from __future__ import annotations

from dataclasses import dataclass

from components.config import PlatformConfig
from components.inference.deadlines import served_context


@dataclass(frozen=True)
class FitRow:
    """What the fit check decided for one model."""

    model: str
    where: str
    weights_gib: float
    kv_gib: float
    served: int
    asked: int
    utilization: float

    @property
    def shortened(self) -> bool:
        """Whether the model serves less context than its config asks for."""
        return self.served < self.asked


def fit_rows(config: PlatformConfig) -> list[FitRow]:
    """One row per local model whose GPUs are known, by name."""
    rows = []
    for name, model in sorted(config.inference.models.items()):
        fit = config.model_fit(name)
        if fit is None:
            continue
        if model.placement == "cluster":
            where = f"cluster {model.gpu_class} x{model.gpu_count}"
        else:
            host = config.cluster.lan_gpu_hosts[model.lan_host or ""]
            service = host.service(config.lan_port(name) or 0)
            server = service.server if service is not None else "?"
            where = (
                f"lan {model.lan_host}:{config.lan_port(name)} ({server}, "
                f"{host.gpu_class} x{host.gpu_count})"
            )
        rows.append(
            FitRow(
                model=name,
                where=where,
                weights_gib=fit.weights_gib,
                kv_gib=fit.kv_gib,
                served=served_context(config, name),
                asked=model.context_length,
                utilization=fit.gpu_memory_utilization,
            )
        )
    return rows


def fit_line(row: FitRow) -> str:
    """`fit <model>: <where>; weights ...; KV ...; context served/asked; utilization`."""
    context = f"context {row.served}/{row.asked}"
    if row.shortened:
        context += " (shortened)"
    return (
        f"fit {row.model}: {row.where}; weights {row.weights_gib:.2f} GiB; "
        f"KV cache {row.kv_gib:.2f} GiB; {context}; GPU memory {row.utilization:.2f}"
    )


def shortened_warning(row: FitRow) -> str:
    """The stderr warning of a model served with less context than asked."""
    return (
        f"warning: inference.models.{row.model}: serves {row.served} tokens of context, "
        f"not the {row.asked} asked for: that is what fits {row.where}; set strict_context "
        "to make this an error"
    )


def fit_table(rows: list[FitRow]) -> list[str]:
    """The same rows as a Markdown table (lines)."""
    lines = [
        "| model | where | weights GiB | KV cache GiB | context served / asked | GPU memory |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        mark = " (shortened)" if row.shortened else ""
        lines.append(
            f"| `{row.model}` | {row.where} | {row.weights_gib:.2f} | {row.kv_gib:.2f} | "
            f"{row.served} / {row.asked}{mark} | {row.utilization:.2f} |"
        )
    return lines
