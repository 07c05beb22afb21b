//! Values like `maxSurge` and `maxUnavailable`: an integer, or a percentage of a total.
//!
//! ```
//! use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
//! use kube_reconcile::workloads::int_or_percent::{Rounding, scaled_value};
//!
//! let surge = IntOrString::String("25%".into());
//! assert_eq!(scaled_value(&surge, 10, Rounding::Up).unwrap(), 3);   // 2.5 → 3
//! assert_eq!(scaled_value(&surge, 10, Rounding::Down).unwrap(), 2); // 2.5 → 2
//! assert_eq!(scaled_value(&IntOrString::Int(4), 10, Rounding::Up).unwrap(), 4);
//! assert!(scaled_value(&IntOrString::String("a lot".into()), 10, Rounding::Up).is_err());
//! ```

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// Which way a fractional percentage of the total goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rounding {
    /// Towards more (`maxSurge`: surge at least one pod when the percentage allows any).
    Up,
    /// Towards fewer (`maxUnavailable`: never take down more than the percentage).
    Down,
}

/// A string that is not `<integer>%`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid value for IntOrString: invalid value {value:?}: must be an integer or a percentage like \"25%\""
)]
pub struct InvalidIntOrPercent {
    /// The value as given.
    pub value: String,
}

/// `value` as a count: an integer as is, `"<n>%"` as `n` percent of `total`, rounded as
/// asked. Integers are not clamped to `total`; callers bound the result where they must
/// (Kubernetes caps `maxUnavailable` at the replica count, not `maxSurge`).
pub fn scaled_value(
    value: &IntOrString,
    total: i32,
    rounding: Rounding,
) -> Result<i32, InvalidIntOrPercent> {
    match value {
        IntOrString::Int(n) => Ok(*n),
        IntOrString::String(s) => {
            let invalid = || InvalidIntOrPercent { value: s.clone() };
            let percent: i64 = s
                .strip_suffix('%')
                .ok_or_else(invalid)?
                .parse()
                .map_err(|_| invalid())?;
            // Huge percentages overflow even i64: an error, not a panic or a wrapped value.
            let scaled = percent.checked_mul(i64::from(total)).ok_or_else(invalid)?;
            let value = match rounding {
                Rounding::Up => scaled.div_euclid(100) + i64::from(scaled.rem_euclid(100) != 0),
                Rounding::Down => scaled.div_euclid(100),
            };
            i32::try_from(value).map_err(|_| invalid())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn percent(s: &str) -> IntOrString {
        IntOrString::String(s.into())
    }

    #[test]
    fn rounds_as_asked_and_keeps_integers() {
        assert_eq!(scaled_value(&percent("25%"), 1, Rounding::Up), Ok(1));
        assert_eq!(scaled_value(&percent("25%"), 1, Rounding::Down), Ok(0));
        assert_eq!(scaled_value(&percent("100%"), 7, Rounding::Down), Ok(7));
        assert_eq!(scaled_value(&percent("0%"), 7, Rounding::Up), Ok(0));
        assert_eq!(scaled_value(&percent("150%"), 2, Rounding::Up), Ok(3));
        assert_eq!(
            scaled_value(&IntOrString::Int(12), 3, Rounding::Down),
            Ok(12)
        );
    }

    #[test]
    fn refuses_what_is_not_a_percentage() {
        for bad in ["25", "%", "x%", "2.5%", ""] {
            assert!(
                scaled_value(&percent(bad), 10, Rounding::Up).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn huge_percentages_are_errors_not_overflows() {
        for huge in ["9223372036854775807%", "-24704128930%"] {
            assert!(scaled_value(&percent(huge), i32::MAX, Rounding::Up).is_err());
            assert!(scaled_value(&percent(huge), -373_353_461, Rounding::Down).is_err());
        }
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        /// Exact `percent * total / 100` rounded as asked, in i128 so nothing overflows;
        /// `None` when the result does not fit an i32.
        fn model(percent: i128, total: i32, rounding: Rounding) -> Option<i32> {
            let scaled = percent * i128::from(total);
            let floor = scaled.div_euclid(100);
            let value = match rounding {
                Rounding::Down => floor,
                // Ceiling written independently of the implementation's remainder test.
                Rounding::Up => -(-scaled).div_euclid(100),
            };
            i32::try_from(value).ok()
        }

        fn rounding() -> impl Strategy<Value = Rounding> {
            prop_oneof![Just(Rounding::Up), Just(Rounding::Down)]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            #[test]
            fn integers_are_themselves(n in any::<i32>(), total in any::<i32>(), r in rounding()) {
                prop_assert_eq!(scaled_value(&IntOrString::Int(n), total, r), Ok(n));
            }

            #[test]
            fn percentages_agree_with_exact_arithmetic(
                percent in -1_000i64..=1_000,
                total in -100_000i32..=100_000,
                r in rounding(),
            ) {
                let got = scaled_value(&IntOrString::String(format!("{percent}%")), total, r);
                prop_assert_eq!(got.ok(), model(percent.into(), total, r));
            }

            #[test]
            fn monotone_in_the_percentage(
                a in 0i64..=500,
                b in 0i64..=500,
                total in 0i32..=1_000_000,
                r in rounding(),
            ) {
                let (low, high) = (a.min(b), a.max(b));
                let at = |p: i64| scaled_value(&IntOrString::String(format!("{p}%")), total, r).unwrap();
                prop_assert!(at(low) <= at(high), "{low}% -> {}, {high}% -> {}", at(low), at(high));
            }

            #[test]
            fn whole_and_none_of_the_total(total in any::<i32>(), r in rounding()) {
                prop_assert_eq!(scaled_value(&percent("100%"), total, r), Ok(total));
                prop_assert_eq!(scaled_value(&percent("0%"), total, r), Ok(0));
            }

            #[test]
            fn rounding_up_adds_at_most_one(percent in 0i64..=1_000, total in 0i32..=1_000_000) {
                let value = IntOrString::String(format!("{percent}%"));
                let up = scaled_value(&value, total, Rounding::Up);
                let down = scaled_value(&value, total, Rounding::Down);
                if let (Ok(up), Ok(down)) = (up, down) {
                    prop_assert!(up >= down && up - down <= 1, "up {up}, down {down}");
                    // Exact percentages round to the same value both ways.
                    let exact = (i64::from(total) * percent) % 100 == 0;
                    prop_assert_eq!(up == down, exact);
                }
            }

            /// Any string, including huge numbers before the `%`: an error or the exact
            /// value, never a panic (an overflowing multiplication used to panic here).
            #[test]
            fn arbitrary_strings_never_panic(
                s in prop_oneof![
                    any::<String>(),
                    "[-+]?[0-9]{0,25}%?",
                    any::<i64>().prop_map(|n| format!("{n}%")),
                ],
                total in any::<i32>(),
                r in rounding(),
            ) {
                let got = scaled_value(&IntOrString::String(s.clone()), total, r);
                let expected = s
                    .strip_suffix('%')
                    .and_then(|n| n.parse::<i64>().ok())
                    .and_then(|n| model(n.into(), total, r));
                prop_assert_eq!(got.ok(), expected, "{:?}", s);
            }
        }
    }
}
