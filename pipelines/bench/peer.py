"""The peer of `npm run bench -- --peer`: the pipeline's core metrics written the way a data team would in pandas.

Reads the bench population's CSV files (one per entity, canonical column names), drops the rows the pipeline
would quarantine (unparseable or out-of-range values, unknown codes, duplicate keys, orphan customer_ids) and
the rows after the as-of date, and computes, by calendar month, for `all` and each of segment and country:
customer-month facts with lifecycle, cohort retention ("on" and "on or after", cumulative revenue), churn
(customers at the start, new, retained, resurrected, churned, rates, NRR, GRR) and NPS/CSAT trends (pooled
rolling 3 months, change). It leaves out what the pipeline also does: the early-warning model, the BG/NBD fit,
the audience, MRR movements, quality gates and publishing. Timestamps are local wall-clock time (the sample's).

usage: python3 peer.py <csv dir> <as-of YYYY-MM-DD> <out dir>
Prints one JSON line: rows read, rows written, and the process's own CPU seconds and peak RSS.
"""

import json
import os
import resource
import sys
import time

import numpy as np
import pandas as pd

SEGMENT_BY = ["segment", "country"]
EMAIL_EVENTS = {"sent", "delivered", "open", "click", "bounce", "unsubscribe", "spam_complaint"}


def read(folder, entity):
    return pd.read_csv(os.path.join(folder, f"{entity}.csv"), dtype=str, keep_default_na=False, na_values=[""])


def to_ts(values):
    # the exports' format first (fast), then anything else pandas can read (slow, for the few other values)
    ts = pd.to_datetime(values, errors="coerce", format="%Y-%m-%d %H:%M:%S")
    other = ts.isna() & values.notna()
    if other.any():
        ts[other] = pd.to_datetime(values[other], errors="coerce")
    return ts


def clean_ts(frame, column, now, required):
    ts = to_ts(frame[column])
    bad = (frame[column].notna() & ts.isna()) | (ts < pd.Timestamp("1970-01-01")) | (ts > now)
    if required:
        bad |= frame[column].isna()
    frame[column] = ts
    return frame[~bad]


def month(ts):
    """Months as integers (year * 12 + month - 1): cheaper to group and count with than Periods."""
    return ts.dt.year * 12 + ts.dt.month - 1


def month_text(frame):
    for column in ("period", "cohort_period"):
        if column in frame:
            months = frame[column].astype(int)
            frame[column] = (months // 12).astype(str) + "-" + (months % 12 + 1).astype(str).str.zfill(2)
    return frame


def month_start(months):
    return pd.to_datetime({"year": months // 12, "month": months % 12 + 1, "day": 1})


def main():
    folder, as_of, out = sys.argv[1], sys.argv[2], sys.argv[3]
    os.makedirs(out, exist_ok=True)
    started = time.time()
    now = pd.Timestamp.now()
    as_of_end = pd.Timestamp(as_of) + pd.Timedelta(days=1)
    as_of_month = pd.Timestamp(as_of).year * 12 + pd.Timestamp(as_of).month - 1
    read_rows = 0

    customers = read(folder, "customers")
    read_rows += len(customers)
    customers = customers[customers["customer_id"].notna()].drop_duplicates("customer_id")
    for column in ["signup_at", "consent_at", "cancelled_at"]:
        customers = clean_ts(customers, column, now, False)
    known = set(customers["customer_id"])

    def entity(name, ts_column, key=None):
        nonlocal read_rows
        frame = read(folder, name)
        read_rows += len(frame)
        frame = frame[frame["customer_id"].isin(known)]
        if key is not None:
            frame = frame[frame[key].notna()].drop_duplicates(key)
        frame = clean_ts(frame, ts_column, now, True)
        return frame[frame[ts_column] < as_of_end]

    orders = entity("orders", "ordered_at", "order_id")
    orders["amount"] = pd.to_numeric(orders["amount"].str.replace(",", ".", regex=False), errors="coerce")
    orders["status"] = orders["status"].fillna("completed").str.lower()
    orders = orders[orders["amount"].notna() & orders["status"].isin(["completed", "cancelled", "refunded"])]
    activity = entity("activity", "occurred_at")
    emails = entity("email_events", "occurred_at")
    emails = emails[emails["event_type"].str.lower().isin(EMAIL_EVENTS)]
    surveys = entity("surveys", "responded_at", "response_id")
    surveys["score"] = pd.to_numeric(surveys["score"], errors="coerce")
    surveys["survey_type"] = surveys["survey_type"].str.lower()
    nps_ok = (surveys["survey_type"] == "nps") & surveys["score"].between(0, 10)
    csat_ok = (surveys["survey_type"] == "csat") & surveys["score"].between(1, 5)
    surveys = surveys[nps_ok | csat_ok]
    tickets = entity("tickets", "opened_at", "ticket_id")
    invoices = entity("invoices", "issued_at", "invoice_id")
    for column in ["due_at", "paid_at"]:
        invoices[column] = to_ts(invoices[column])
    subscriptions = entity("subscriptions", "started_at", "subscription_id")
    subscriptions["ended_at"] = to_ts(subscriptions["ended_at"])
    subscriptions["mrr"] = pd.to_numeric(subscriptions["mrr"], errors="coerce").fillna(0)

    # customer-month facts
    completed = orders[(orders["status"] == "completed") & (orders["amount"] > 0)]
    refunds = orders[(orders["status"] == "refunded") | (orders["amount"] < 0)]
    parts = {
        "orders": completed.groupby(["customer_id", month(completed["ordered_at"])]).size(),
        "revenue": completed.groupby(["customer_id", month(completed["ordered_at"])])["amount"].sum(),
        "refunds": refunds.assign(amount=refunds["amount"].abs())
        .groupby(["customer_id", month(refunds["ordered_at"])])["amount"]
        .sum(),
        "activity_events": activity.groupby(["customer_id", month(activity["occurred_at"])]).size(),
    }
    for kind, column in [("sent", "emails_sent"), ("open", "emails_opened"), ("click", "emails_clicked")]:
        chosen = emails[emails["event_type"].str.lower() == kind]
        parts[column] = chosen.groupby(["customer_id", month(chosen["occurred_at"])]).size()
    for kind in ["nps", "csat"]:
        chosen = surveys[surveys["survey_type"] == kind]
        grouped = chosen.groupby(["customer_id", month(chosen["responded_at"])])["score"]
        parts[f"{kind}_responses"] = grouped.size()
        parts[f"{kind}_avg"] = grouped.mean()
    parts["tickets_opened"] = tickets.groupby(["customer_id", month(tickets["opened_at"])]).size()
    complaints = tickets[tickets["is_complaint"].str.lower().isin(["true", "t", "yes", "y", "1"])]
    parts["complaints"] = complaints.groupby(["customer_id", month(complaints["opened_at"])]).size()
    due = invoices[invoices["due_at"] < as_of_end]
    late_days = (due["paid_at"].fillna(as_of_end) - due["due_at"]).dt.total_seconds() / 86400
    due = due.assign(late=late_days > 0, days_late=late_days.where(late_days > 0))
    grouped = due.groupby(["customer_id", month(due["due_at"])])
    parts["invoices_due"] = grouped.size()
    parts["invoices_paid_late"] = grouped["late"].sum()
    parts["avg_days_late"] = grouped["days_late"].mean()

    # subscriptions: active on some day of the month; MRR on the month's last day (or the as-of date)
    subs = subscriptions.assign(
        first=month(subscriptions["started_at"]),
        last=month(subscriptions["ended_at"].fillna(as_of_end).clip(upper=as_of_end) - pd.Timedelta(microseconds=1)),
    )
    subs = subs[subs["last"] >= subs["first"]]
    span = subs["last"] - subs["first"] + 1
    exploded = subs.loc[subs.index.repeat(span)].copy()
    exploded["period"] = exploded["first"] + exploded.groupby(level=0).cumcount().to_numpy()
    ends = pd.Series(np.arange(exploded["period"].min(), exploded["period"].max() + 1)) if len(exploded) else pd.Series([], dtype=int)
    last_day = dict(zip(ends, month_start(ends + 1) - pd.Timedelta(days=1))) if len(ends) else {}
    period_end = exploded["period"].map(last_day).clip(upper=pd.Timestamp(as_of))
    on_last_day = exploded["ended_at"].isna() | (exploded["ended_at"] > period_end + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1))
    exploded["mrr_end"] = exploded["mrr"].where(on_last_day, 0)
    grouped = exploded.groupby(["customer_id", "period"])
    parts["subscription_active"] = grouped.size() > 0
    parts["mrr"] = grouped["mrr_end"].sum()

    facts = pd.DataFrame(parts)
    facts.index.names = ["customer_id", "period"]
    facts = facts.reset_index()
    facts["is_active"] = (facts["orders"].fillna(0) > 0) | (facts["activity_events"].fillna(0) > 0) | facts[
        "subscription_active"
    ].fillna(False).astype(bool)
    firsts = facts[facts["is_active"]].groupby("customer_id")["period"].min().rename("cohort_period")

    # the full grid: every customer from the cohort period to the as-of month
    cohort = firsts.reset_index()
    cohort["months"] = as_of_month - cohort["cohort_period"] + 1
    grid = cohort.loc[cohort.index.repeat(cohort["months"])].copy()
    grid["period_index"] = grid.groupby(level=0).cumcount().to_numpy()
    grid["period"] = grid["cohort_period"] + grid["period_index"]
    grid = grid.drop(columns="months").merge(facts, on=["customer_id", "period"], how="left")
    counts = [c for c in parts if c not in ("nps_avg", "csat_avg", "avg_days_late", "subscription_active")]
    grid[counts] = grid[counts].fillna(0)
    grid["is_active"] = grid["is_active"].fillna(False).astype(bool)
    grid = grid.sort_values(["customer_id", "period"]).reset_index(drop=True)
    previous = grid.groupby("customer_id")["is_active"].shift(1, fill_value=False)
    grid["lifecycle"] = np.select(
        [grid["period_index"] == 0, grid["is_active"] & previous, grid["is_active"], previous],
        ["new", "retained", "resurrected", "churned"],
        "dormant",
    )
    for state in ["new", "retained", "resurrected", "churned"]:
        grid[f"is_{state}"] = grid["lifecycle"] == state
    grid["previous_revenue"] = grid.groupby("customer_id")["revenue"].shift(1, fill_value=0)
    grid["was_active"] = previous
    grid["is_complete"] = grid["period"] < as_of_month
    grid = grid.merge(customers[["customer_id", *SEGMENT_BY]], on="customer_id", how="left")
    grid[SEGMENT_BY] = grid[SEGMENT_BY].fillna("unknown")
    written = len(grid)
    month_text(grid.copy()).to_csv(os.path.join(out, "fct_customer_period.csv"), index=False)

    # cohort retention, churn and survey trends: all, and by each segment column
    cohorts, churn, trends = [], [], []
    surveys = surveys.merge(customers[["customer_id", *SEGMENT_BY]], on="customer_id", how="left")
    surveys[SEGMENT_BY] = surveys[SEGMENT_BY].fillna("unknown")
    surveys["period"] = month(surveys["responded_at"])
    for segment_by in ["all", *SEGMENT_BY]:
        key = [] if segment_by == "all" else [segment_by]
        done = grid[grid["is_complete"]]

        later = done.sort_values("period", ascending=False)
        later = later.assign(unbounded=later.groupby("customer_id")["is_active"].cummax())
        cells = later.groupby(key + ["cohort_period", "period_index"]).agg(
            active_customers=("is_active", "sum"), unbounded_active=("unbounded", "sum"), revenue=("revenue", "sum")
        )
        size = done[done["period_index"] == 0].groupby(key + ["cohort_period"]).size().rename("cohort_size")
        cells = cells.join(size).reset_index()
        cells["retention_pct"] = cells["active_customers"] / cells["cohort_size"] * 100
        cells["unbounded_retention_pct"] = cells["unbounded_active"] / cells["cohort_size"] * 100
        cells = cells.sort_values(key + ["cohort_period", "period_index"])
        cells["cumulative_revenue_per_customer"] = (
            cells.groupby(key + ["cohort_period"])["revenue"].cumsum() / cells["cohort_size"]
        )
        cohorts.append(cells.assign(segment_by=segment_by))

        base = done[done["was_active"]]
        summary = done.groupby(key + ["period"]).agg(
            new_customers=("is_new", "sum"),
            retained=("is_retained", "sum"),
            resurrected=("is_resurrected", "sum"),
            churned=("is_churned", "sum"),
            active_customers=("is_active", "sum"),
        )
        start = base.assign(kept=np.minimum(base["revenue"], base["previous_revenue"])).groupby(key + ["period"]).agg(
            customers_start=("customer_id", "size"),
            revenue_start=("previous_revenue", "sum"),
            revenue_now=("revenue", "sum"),
            revenue_kept=("kept", "sum"),
        )
        summary = summary.join(start).fillna({"customers_start": 0})
        small = summary["customers_start"] < 10
        summary["churn_rate_pct"] = (summary["churned"] / summary["customers_start"] * 100).mask(small)
        summary["retention_rate_pct"] = (summary["retained"] / summary["customers_start"] * 100).mask(small)
        summary["nrr_pct"] = (summary["revenue_now"] / summary["revenue_start"] * 100).mask(small)
        summary["grr_pct"] = (summary["revenue_kept"] / summary["revenue_start"] * 100).mask(small)
        churn.append(summary.reset_index().assign(segment_by=segment_by))

        for kind in ["nps", "csat"]:
            chosen = surveys[surveys["survey_type"] == kind]
            score = chosen["score"]
            chosen = chosen.assign(
                promoter=score >= 9 if kind == "nps" else score >= 4,
                detractor=score <= 6 if kind == "nps" else score <= 2,
            )
            months = chosen.groupby(key + ["period"]).agg(
                responses=("score", "size"),
                good=("promoter", "sum"),
                bad=("detractor", "sum"),
                score_sum=("score", "sum"),
            )
            months = months[months.index.get_level_values("period") < as_of_month].reset_index()
            months = months.sort_values(key + ["period"])
            sums = months[["responses", "good", "bad"]]
            rolled = (
                sums.groupby([months[k] for k in key]).rolling(3, min_periods=1).sum().reset_index(level=key, drop=True)
                if key
                else sums.rolling(3, min_periods=1).sum()
            )
            months[["r3_responses", "r3_good", "r3_bad"]] = rolled.to_numpy() if not key else rolled.loc[months.index]
            share_good = months["good"] / months["responses"]
            share_bad = months["bad"] / months["responses"]
            if kind == "nps":
                months["nps"] = (share_good - share_bad) * 100
                months["nps_moe95"] = (
                    1.96 * 100 * np.sqrt((share_good + share_bad - (share_good - share_bad) ** 2) / months["responses"])
                )
                months["rolling_3"] = (months["r3_good"] - months["r3_bad"]) / months["r3_responses"] * 100
                value = months["nps"]
            else:
                months["csat_pct"] = share_good * 100
                months["rolling_3"] = months["r3_good"] / months["r3_responses"] * 100
                value = months["csat_pct"]
            months["score_avg"] = months["score_sum"] / months["responses"]
            months["delta_vs_prev"] = value - (value.groupby([months[k] for k in key]).shift(1) if key else value.shift(1))
            trends.append(months.assign(segment_by=segment_by, survey_type=kind))

    for name, frames in [("cohort_retention", cohorts), ("churn_summary", churn), ("survey_trends", trends)]:
        table = pd.concat(frames, ignore_index=True)
        written += len(table)
        month_text(table).to_csv(os.path.join(out, f"{name}.csv"), index=False)

    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(
        json.dumps(
            {
                "rows_read": read_rows,
                "rows_written": written,
                "seconds": round(time.time() - started, 3),
                "cpu_ms": round((usage.ru_utime + usage.ru_stime) * 1000),
                "max_rss_kb": usage.ru_maxrss,
            }
        )
    )


if __name__ == "__main__":
    main()
