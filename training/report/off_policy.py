"""The report page of an off-policy evaluation (a partial-feedback log).

One table of the default policy's quality and cost by estimator with their intervals,
the evaluated knobs, the logged calls and the policy's share per model, the warnings,
and the value_usd sweep: a plot of the DR and SNIPS estimates with their 95% bands
and a table of every estimator along the sweep.
"""

from __future__ import annotations

from training.evaluation.results import BanditEvaluation, OffPolicySection
from training.off_policy import EstimatorResult
from training.report.page import _CSS, _card, _e, _img, _q, _usd
from training.report.plots import _figure, png

#: Estimators drawn with bands on the curve plot, and their colours.
BANDED = {"dr": "#0969da", "snips": "#cf222e"}
#: What each estimator is, for the table.
ABOUT = {
    "dr": "doubly robust: DM + weighted residual (Dudík et al. 2011)",
    "snips": "self-normalized importance weighting (Swaminathan & Joachims 2015)",
    "ips": "inverse propensity weighting",
    "dm": "direct method: the bundle's own predictions",
}


def _ci(pair: list[float | None], fmt) -> str:
    low, high = pair
    return f"[{fmt(low)}, {fmt(high)}]"


def off_policy_png(section: OffPolicySection) -> bytes:
    """Quality and cost along the value_usd sweep, DR and SNIPS with 95% bands."""
    fig = _figure(11, 4.8)
    ax_cq = fig.add_subplot(1, 2, 1)
    ax_q = fig.add_subplot(1, 2, 2)
    values = [p.value_usd for p in section.curve]
    positive = [i for i, v in enumerate(values) if v > 0]  # value 0 has no place on a log axis
    for name, color in BANDED.items():
        rows = [p.estimators[name] for p in section.curve if name in p.estimators]
        if len(rows) != len(section.curve):
            continue
        q = [r.quality.estimate for r in rows]
        ql = [r.quality.low for r in rows]
        qh = [r.quality.high for r in rows]
        cost = [r.cost_usd.estimate for r in rows]
        cl = [r.cost_usd.low for r in rows]
        ch = [r.cost_usd.high for r in rows]
        x = [values[i] for i in positive]
        ax_q.plot(x, [q[i] for i in positive], "-o", color=color, ms=3, label=name.upper())
        ax_q.fill_between(
            x, [ql[i] for i in positive], [qh[i] for i in positive], color=color, alpha=0.15
        )
        ax_cq.errorbar(
            cost,
            q,
            xerr=[
                [max(c - lo, 0) for c, lo in zip(cost, cl, strict=True)],
                [max(hi - c, 0) for c, hi in zip(cost, ch, strict=True)],
            ],
            yerr=[
                [max(v - lo, 0) for v, lo in zip(q, ql, strict=True)],
                [max(hi - v, 0) for v, hi in zip(q, qh, strict=True)],
            ],
            fmt="-o",
            ms=3,
            lw=1.2,
            alpha=0.8,
            color=color,
            label=f"{name.upper()} (95% interval)",
        )
        default = section.estimators.get(name)
        if default is not None:
            ax_cq.plot(
                [default.cost_usd.estimate],
                [default.quality.estimate],
                "*",
                ms=14,
                color=color,
                markeredgecolor="black",
                label=f"{name.upper()} at the default policy",
            )
    ax_cq.set_xscale("log")
    ax_cq.set_xlabel("estimated mean cost per call (USD)")
    ax_cq.set_ylabel("estimated quality (mean outcome)")
    ax_cq.set_title("Cost-quality curve, off-policy")
    ax_cq.legend(fontsize=7)
    ax_q.set_xscale("log")
    ax_q.set_xlabel("value_usd of one good outcome")
    ax_q.set_ylabel("estimated quality")
    ax_q.set_title("Quality along the value_usd sweep (95% bands)")
    ax_q.legend(fontsize=8)
    return png(fig)


def _estimators_table(estimators: dict[str, EstimatorResult], default: str) -> str:
    rows = []
    for name, result in estimators.items():
        d = result.to_dict()
        cls = ' class="me"' if name == default else ""
        rows.append(
            f"<tr{cls}><td class='l'>{_e(name.upper())}</td><td>{_q(d['quality'])}</td>"
            f"<td>{_ci(d['quality_ci'], _q)}</td><td>{_usd(d['cost_usd'])}</td>"
            f"<td>{_ci(d['cost_usd_ci'], _usd)}</td>"
            f"<td class='l'>{_e(ABOUT.get(name, ''))}</td></tr>"
        )
    return (
        '<table id="off-policy-estimators"><tr><th class="l">estimator</th><th>quality</th>'
        "<th>95% interval</th><th>cost per call</th><th>95% interval</th>"
        '<th class="l">what it is</th></tr>' + "".join(rows) + "</table>"
    )


def _share_table(section: OffPolicySection) -> str:
    rows = []
    for name in section.actions:
        share = section.policy_share.get(name)
        rows.append(
            f"<tr><td class='l'>{_e(name)}</td><td>{section.logged_calls.get(name, 0)}</td>"
            f"<td>{'n/a' if share is None else f'{100 * share:.1f}%'}</td></tr>"
        )
    return (
        '<table><tr><th class="l">model</th><th>logged calls</th>'
        "<th>share of the policy's choices</th></tr>" + "".join(rows) + "</table>"
    )


def _curve_table(section: OffPolicySection) -> str:
    names = list(section.estimators)
    head = "".join(f"<th>{_e(n.upper())} quality</th><th>{_e(n.upper())} cost</th>" for n in names)
    rows = []
    for point in section.curve:
        cells = ""
        for n in names:
            d = point.estimators[n].to_dict()
            cells += (
                f"<td>{_q(d['quality'])} {_ci(d['quality_ci'], _q)}</td>"
                f"<td>{_usd(d['cost_usd'])} {_ci(d['cost_usd_ci'], _usd)}</td>"
            )
        rows.append(f"<tr><td>{_usd(point.value_usd)}</td><td>{point.ess:.1f}</td>{cells}</tr>")
    return f"<table><tr><th>value_usd</th><th>ESS</th>{head}</tr>" + "".join(rows) + "</table>"


def _signed(value: float | None, fmt) -> str:
    if value is None:
        return "n/a"
    return ("+" if value > 0 else "-" if value < 0 else "") + fmt(abs(value))


def _comparisons_table(section: OffPolicySection) -> str:
    """This bundle minus each compared one, paired intervals; rows whose net-value
    interval lies wholly below 0 (``promote`` would refuse) are marked."""
    rows = []
    for entry in section.comparisons:
        d = entry.to_dict()
        low, high = d["net_value_diff_ci"]
        verdict = (
            "worse (interval below 0)"
            if high is not None and high < 0
            else "better (interval above 0)"
            if low is not None and low > 0
            else "no clear difference"
        )
        rows.append(
            f"<tr><td class='l'>{_e(entry.label)}<br><small>{_e(entry.router_version)}"
            f"{' - ' + _e(entry.note) if entry.note else ''}</small></td>"
            f"<td>{_signed(d['quality_diff'], _q)}</td>"
            f"<td>[{_signed(d['quality_diff_ci'][0], _q)}, "
            f"{_signed(d['quality_diff_ci'][1], _q)}]</td>"
            f"<td>{_signed(d['cost_usd_diff'], _usd)}</td>"
            f"<td>[{_signed(d['cost_usd_diff_ci'][0], _usd)}, "
            f"{_signed(d['cost_usd_diff_ci'][1], _usd)}]</td>"
            f"<td>{_signed(d['net_value_diff'], _usd)}</td>"
            f"<td>[{_signed(low, _usd)}, {_signed(high, _usd)}]</td>"
            f"<td>{_usd(d['value_usd'])}</td><td>{_e(d['estimator'].upper())}</td>"
            f"<td class='l'>{verdict}</td></tr>"
        )
    return (
        '<h3 id="off-policy-comparisons">Against the compared bundles (paired)</h3>'
        '<p class="sub">This bundle minus each compared bundle, both estimated on the same '
        "logged calls with the same estimator; the 95% intervals come from a paired "
        "bootstrap (one resample of the calls per replicate for both policies). Net value "
        "per call = value_usd x quality - cost.</p>"
        '<table><tr><th class="l">compared bundle</th><th>quality diff</th>'
        "<th>95% interval</th><th>cost diff</th><th>95% interval</th>"
        "<th>net value diff</th><th>95% interval</th><th>value_usd</th><th>estimator</th>"
        '<th class="l">verdict</th></tr>' + "".join(rows) + "</table>"
    )


def off_policy_section_html(section: OffPolicySection, image: bytes) -> str:
    """The off-policy section (``<h2 id="off-policy">``) of a report page."""
    default = section.estimators.get(section.default_estimator)
    d = default.to_dict() if default else None
    policy = section.policy
    knobs = ", ".join(f"{k}={v}" for k, v in policy.items() if v is not None)
    cards = (
        '<div class="headline">'
        + (
            _card(
                f"quality ({section.default_estimator.upper()})",
                _q(d["quality"]),
                f"95% {_ci(d['quality_ci'], _q)}",
            )
            + _card(
                f"cost per call ({section.default_estimator.upper()})",
                _usd(d["cost_usd"]),
                f"95% {_ci(d['cost_usd_ci'], _usd)}",
            )
            if d
            else ""
        )
        + _card("logged calls", str(section.n), f"propensity {section.propensity_source}")
        + _card("effective sample size", f"{section.ess:.1f}", "(sum w)^2 / sum w^2")
        + "</div>"
    )
    warnings = "".join(f"<li>{_e(w)}</li>" for w in section.warnings)
    notes = (
        f"Only the logged model's outcome is known for each call, so the policy's value is "
        f"estimated. Intervals: percentile bootstrap over calls ({section.n_bootstrap} "
        f"resamples; the curve uses fewer), {100 * (1 - section.alpha):.0f}%. DM and DR use the "
        "bundle's own p_success and expected_cost_usd as the regression model; importance "
        f"weights {'clipped at ' + str(section.clip) if section.clip else 'are not clipped'}. "
        f"Propensities: {section.propensity_source}."
    )
    return (
        '<h2 id="off-policy">Off-policy estimates</h2>'
        f'<p class="sub">The served policy ({_e(knobs)}) on {section.n} logged calls.</p>'
        + cards
        + (
            f'<div id="off-policy-warnings"><h3>Warnings</h3><ul>{warnings}</ul></div>'
            if warnings
            else ""
        )
        + _estimators_table(section.estimators, section.default_estimator)
        + f'<p class="note">{_e(notes)}</p>'
        + (_comparisons_table(section) if section.comparisons else "")
        + "<h3>Cost-quality curve along value_usd</h3>"
        + _img(image, "off-policy cost-quality curve with DR and SNIPS bands")
        + "<h3>Logged calls and the policy's choices</h3>"
        + _share_table(section)
        + "<h3>Every estimator along the sweep</h3>"
        + _curve_table(section)
    )


def render_bandit_html(evaluation: BanditEvaluation, title: str) -> str:
    """The whole page of a partial-feedback evaluation."""
    section = evaluation.off_policy
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{_e(title)}</h1>"
        f'<p class="sub">Partial-feedback log: {evaluation.n_prompts} prompts, '
        f"{section.n} graded calls ({evaluation.n_ungraded} ungraded or unpriced left out, "
        f"{evaluation.n_quarantined} quarantined). Candidates: "
        f"{_e(', '.join(evaluation.candidates))}. Router version "
        f"{_e(evaluation.router_version)}.</p>"
        + off_policy_section_html(section, off_policy_png(section))
        + "</body></html>\n"
    )
