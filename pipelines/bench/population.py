"""A second synthetic population for `npm run bench -- --detection`, of a different make from the sample generator.

The sample generator (pipelines/sample/) and the early warning were built side by side, so a score on it can flatter
the product. This population is written apart from both, in plain NumPy, with its own assumptions:

  steady          55% of the customers with a rate: active days a Poisson process at a lognormal rate (median
                  5 a month x --scale, sigma 0.7), multiplied each 30 days by a gamma noise of CV 0.3; an order on
                  30% of the active days
  silent_churner  the same until a decline start 30-180 days before the as-of date, then the rate decays
                  exponentially (time constant 10-45 days)
  slow_regular    an order every 35-75 days (each gap +-20%), nothing else
  one_time        one order
  new             a steady customer who started 20-100 days before the as-of date

Shares: steady 45%, slow_regular 15%, silent_churner 20%, one_time 10%, new 10%. History from 2023-07-01, as of
2025-06-30. Writes customers.csv, orders.csv, activity.csv and ground_truth.csv (customer_id, archetype, decay_start).

    python3 pipelines/bench/population.py --out DIR [--seed 1] [--customers 3000] [--scale 1]
"""

import argparse
import csv
import os

import numpy as np

START = np.datetime64("2023-07-01")
AS_OF = np.datetime64("2025-06-30")
KINDS = ["steady", "slow_regular", "silent_churner", "one_time", "new"]
SHARES = [0.45, 0.15, 0.20, 0.10, 0.10]
SEASON_PEAK = int((np.datetime64("2023-12-15") - START) / np.timedelta64(1, "D"))


def day(d):
    return str(START + np.timedelta64(int(d), "D"))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--season", type=float, default=0.0,
                        help="amplitude of a yearly season common to everyone (peak mid-December)")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    os.makedirs(args.out, exist_ok=True)
    span = int((AS_OF - START) / np.timedelta64(1, "D")) + 1
    kinds = rng.choice(KINDS, size=args.customers, p=SHARES)
    files = {name: open(os.path.join(args.out, f"{name}.csv"), "w", newline="") for name in
             ["customers", "orders", "activity", "ground_truth"]}
    out = {name: csv.writer(f) for name, f in files.items()}
    out["customers"].writerow(["customer_id", "email", "signup_at", "marketing_consent"])
    out["orders"].writerow(["order_id", "customer_id", "ordered_at", "amount", "status"])
    out["activity"].writerow(["customer_id", "occurred_at", "event_type"])
    out["ground_truth"].writerow(["customer_id", "archetype", "decay_start"])
    order_no = 0
    for i, kind in enumerate(kinds):
        customer_id = f"p{args.seed}-{i:06d}"
        first = span - int(rng.integers(20, 100)) if kind == "new" else int(rng.integers(0, span - 200))
        days = np.arange(first, span)
        decay_start = None
        if kind in ("steady", "silent_churner", "new"):
            rate = args.scale * np.exp(rng.normal(np.log(5), 0.7)) / 30
            months = (days - first) // 30
            rate = rate * rng.gamma(1 / 0.3**2, 0.3**2, size=months.max() + 1)[months]
            if args.season:
                rate = rate * (1 + args.season * np.cos(2 * np.pi * (days - SEASON_PEAK) / 365.25))
            if kind == "silent_churner":
                decay_start = span - int(rng.integers(30, 181))
                tau = rng.uniform(10, 45)
                rate = np.where(days >= decay_start, rate * np.exp(-(days - decay_start) / tau), rate)
            active = days[rng.random(len(days)) < np.minimum(rate, 0.95)]
            for d in active:
                out["activity"].writerow(
                    [customer_id, f"{day(d)} {rng.integers(7, 23):02d}:{rng.integers(0, 60):02d}:00", "session"])
            order_days = active[rng.random(len(active)) < 0.3]
        elif kind == "slow_regular":
            gap = rng.uniform(35, 75)
            t = first + rng.uniform(0, gap)
            order_days = []
            while t < span:
                order_days.append(int(t))
                t += gap * rng.uniform(0.8, 1.2)
        else:
            order_days = [first]
        for d in order_days:
            order_no += 1
            out["orders"].writerow([f"{customer_id}-{order_no}", customer_id, f"{day(d)} 12:00:00",
                                    round(float(rng.lognormal(3.5, 0.5)), 2), "completed"])
        out["customers"].writerow([customer_id, f"{customer_id}@example.com", f"{day(first)} 09:00:00", "true"])
        out["ground_truth"].writerow([customer_id, kind, "" if decay_start is None else day(decay_start)])
    for f in files.values():
        f.close()


if __name__ == "__main__":
    main()
