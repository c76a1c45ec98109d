//! Load traces: CSV `timestamp_seconds,value` where value is a count per fixed interval.

use thiserror::Error;

/// A parse problem, with the 1-based line it was found on.
#[derive(Debug, Error, PartialEq)]
pub enum TraceError {
    #[error("line {line}: {message}")]
    Line { line: usize, message: String },
    #[error("the trace has no rows")]
    Empty,
}

/// Longest trace accepted, in intervals (a year of 1 s steps is 31.5 M).
const MAX_INTERVALS: usize = 40_000_000;
/// Largest timestamp accepted (about 31,700 years): keeps every sum far from overflow.
const MAX_TIMESTAMP: i64 = 1_000_000_000_000;
/// Largest count per interval accepted.
const MAX_VALUE: f64 = 1e15;

/// A trace as a dense, evenly stepped series of rates (requests/s).
#[derive(Debug, Clone)]
pub struct Trace {
    /// Interval length in seconds.
    pub step: i64,
    /// Timestamp of the first row.
    pub first: i64,
    /// Rate in each interval from `first`; missing rows are 0 (see `gaps`).
    rates: Vec<f64>,
    /// Requests before each interval boundary: `cumulative[i]` = requests in [first, first + i·step).
    cumulative: Vec<f64>,
    /// (after_t, seconds) for every hole in the rows.
    pub gaps: Vec<(i64, i64)>,
}

impl Trace {
    /// Parse the CSV text. An optional header line is skipped. The step is the smallest
    /// difference between consecutive timestamps, unless `step` is given (from meta.json).
    pub fn parse(text: &str, step: Option<i64>) -> Result<Trace, TraceError> {
        let mut rows: Vec<(usize, i64, f64)> = Vec::new();
        let mut header_seen = false;
        for (i, line) in text.lines().enumerate() {
            let line_no = i + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let err = |message: String| TraceError::Line {
                line: line_no,
                message,
            };
            let (a, b) = line
                .split_once(',')
                .ok_or_else(|| err(format!("expected `timestamp_seconds,value`, got `{line}`")))?;
            let a = a.trim();
            let t = match a.parse::<i64>() {
                Ok(t) => t,
                // "60.0" is a whole number too.
                Err(_) => match a.parse::<f64>() {
                    Ok(f) if f.fract() == 0.0 && f.abs() < MAX_TIMESTAMP as f64 => f as i64,
                    Ok(f) => {
                        return Err(err(format!(
                            "timestamp {f} must be a whole number of seconds"
                        )));
                    }
                    Err(_) if rows.is_empty() && !header_seen => {
                        header_seen = true;
                        continue;
                    }
                    Err(_) => return Err(err(format!("timestamp `{a}` is not a number"))),
                },
            };
            if !(0..=MAX_TIMESTAMP).contains(&t) {
                return Err(err(format!(
                    "timestamp {t} is out of range: expected 0 to {MAX_TIMESTAMP} seconds"
                )));
            }
            let v: f64 = b
                .trim()
                .parse()
                .map_err(|_| err(format!("value `{}` is not a number", b.trim())))?;
            if !(0.0..=MAX_VALUE).contains(&v) {
                return Err(err(format!(
                    "value {v} must be a count from 0 to {MAX_VALUE:e}"
                )));
            }
            if let Some(&(_, prev, _)) = rows.last()
                && t <= prev
            {
                return Err(err(format!(
                    "timestamp {t} is not after the previous one ({prev})"
                )));
            }
            rows.push((line_no, t, v));
        }
        if rows.is_empty() {
            return Err(TraceError::Empty);
        }
        let min_gap = rows.windows(2).map(|w| w[1].1 - w[0].1).min();
        let step = match (step, min_gap) {
            (Some(s), _) if s <= 0 || s > MAX_TIMESTAMP => {
                return Err(TraceError::Line {
                    line: rows[0].0,
                    message: format!("step {s} s is out of range"),
                });
            }
            (Some(s), Some(gap)) if gap % s != 0 || gap > s => {
                return Err(TraceError::Line {
                    line: rows[0].0,
                    message: format!(
                        "the rows are at least {gap} s apart, which does not match the declared step of {s} s"
                    ),
                });
            }
            (Some(s), _) => s,
            (None, Some(gap)) => gap,
            (None, None) => {
                return Err(TraceError::Line {
                    line: rows[0].0,
                    message: "a trace of one row needs its step (meta.json `resolution_seconds`)"
                        .into(),
                });
            }
        };
        let first = rows[0].1;
        let last = rows[rows.len() - 1].1;
        let n = ((last - first) / step + 1) as usize;
        // Dense storage: refuse a file whose few rows claim an absurd span.
        if n > MAX_INTERVALS {
            return Err(TraceError::Line {
                line: rows[rows.len() - 1].0,
                message: format!(
                    "the trace spans {n} intervals of {step} s; at most {MAX_INTERVALS} are supported"
                ),
            });
        }
        let mut rates = vec![0.0; n];
        let mut gaps = Vec::new();
        let mut prev: Option<i64> = None;
        for &(line, t, v) in &rows {
            if (t - first) % step != 0 {
                return Err(TraceError::Line {
                    line,
                    message: format!(
                        "timestamp {t} is not on the {step} s grid that starts at {first}"
                    ),
                });
            }
            if let Some(p) = prev
                && t - p > step
            {
                gaps.push((p, t - p - step));
            }
            prev = Some(t);
            rates[((t - first) / step) as usize] = v / step as f64;
        }
        let mut cumulative = Vec::with_capacity(n + 1);
        let mut acc = 0.0;
        cumulative.push(0.0);
        for r in &rates {
            acc += r * step as f64;
            cumulative.push(acc);
        }
        Ok(Trace {
            step,
            first,
            rates,
            cumulative,
            gaps,
        })
    }

    /// End of the last interval.
    pub fn end(&self) -> i64 {
        self.first + self.rates.len() as i64 * self.step
    }

    fn index(&self, t: i64) -> Option<usize> {
        if t < self.first {
            return None;
        }
        let i = ((t - self.first) / self.step) as usize;
        (i < self.rates.len()).then_some(i)
    }

    /// Demand rate (requests/s) at time `t`; 0 outside the trace.
    pub fn rate(&self, t: i64) -> f64 {
        self.index(t).map_or(0.0, |i| self.rates[i])
    }

    /// Requests in [first, t).
    pub fn cumulative(&self, t: i64) -> f64 {
        if t <= self.first {
            return 0.0;
        }
        match self.index(t) {
            Some(i) => {
                let start = self.first + i as i64 * self.step;
                self.cumulative[i] + self.rates[i] * (t - start) as f64
            }
            None => self.cumulative[self.rates.len()],
        }
    }

    /// Exact mean rate over [a, b).
    pub fn mean(&self, a: i64, b: i64) -> f64 {
        if b <= a {
            return self.rate(a);
        }
        (self.cumulative(b) - self.cumulative(a)) / (b - a) as f64
    }

    /// Calls `f(rate, seconds)` for each constant-rate piece of [a, b).
    pub fn pieces(&self, a: i64, b: i64, mut f: impl FnMut(f64, i64)) {
        let mut t = a;
        while t < b {
            let next = if t < self.first {
                self.first
            } else {
                self.first + ((t - self.first) / self.step + 1) * self.step
            };
            let end = next.min(b);
            f(self.rate(t), end - t);
            t = end;
        }
    }

    /// Largest rate of the intervals overlapping [a, b).
    pub fn peak(&self, a: i64, b: i64) -> f64 {
        let mut peak = 0.0f64;
        self.pieces(a, b, |r, _| peak = peak.max(r));
        peak
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_integrates() {
        let t = Trace::parse("timestamp_seconds,value\n0,60\n60,120\n120,0\n", None).unwrap();
        assert_eq!(t.step, 60);
        assert_eq!(t.rate(30), 1.0);
        assert_eq!(t.rate(60), 2.0);
        assert_eq!(t.cumulative(90), 120.0);
        assert_eq!(t.mean(30, 90), 1.5);
        assert_eq!(t.end(), 180);
        assert_eq!(t.peak(0, 180), 2.0);
    }

    #[test]
    fn gaps_are_zero_and_reported() {
        let t = Trace::parse("0,10\n10,10\n40,10\n", None).unwrap();
        assert_eq!(t.gaps, vec![(10, 20)]);
        assert_eq!(t.rate(25), 0.0);
    }

    #[test]
    fn bad_rows_name_their_line() {
        assert_eq!(
            Trace::parse("t,v\n0,1\n60,x\n", None)
                .unwrap_err()
                .to_string(),
            "line 3: value `x` is not a number"
        );
        assert!(
            Trace::parse("0,1\n0,2\n", None)
                .unwrap_err()
                .to_string()
                .contains("line 2")
        );
        assert!(
            Trace::parse("0,1\n60,-2\n", None)
                .unwrap_err()
                .to_string()
                .contains("must be a count from 0")
        );
        assert_eq!(Trace::parse("t,v\n", None).unwrap_err(), TraceError::Empty);
        let huge = Trace::parse("0,1\n1,1\n9000000000,1\n", None)
            .unwrap_err()
            .to_string();
        assert!(huge.starts_with("line 3: the trace spans"), "{huge}");
    }
}
