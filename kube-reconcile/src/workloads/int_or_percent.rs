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
            let scaled = percent * i64::from(total);
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
}
