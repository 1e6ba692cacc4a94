//! Closed lists of codes (statuses, claim types, ...) as Rust enums with one stable text form,
//! used in the database and in logs. [`code_enum!`](crate::code_enum) writes the enum, its
//! `as_str`, `FromStr` and `Display` from one table, so the two directions cannot drift.

use thiserror::Error;

/// Reports that a stored or wire code is not one of an enum's known values.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown {kind} {value:?}")]
pub struct UnknownCode {
    /// What kind of code was parsed (e.g. "claim status").
    pub kind: &'static str,
    /// The rejected value.
    pub value: String,
}

/// Declares a code enum: variants with their text codes, `ALL`, `as_str`, `FromStr` (failing
/// with [`UnknownCode`]) and `Display`.
///
/// ```
/// medbill_domain::code_enum!(
///     /// A traffic light.
///     Light, "light", {
///         /// Stop.
///         Red => "RED",
///         /// Go.
///         Green => "GREEN",
///     }
/// );
/// assert_eq!("RED".parse::<Light>(), Ok(Light::Red));
/// assert_eq!(Light::Green.to_string(), "GREEN");
/// assert!("BLUE".parse::<Light>().is_err());
/// ```
#[macro_export]
macro_rules! code_enum {
    ($(#[$meta:meta])* $name:ident, $kind:literal, { $($(#[$vmeta:meta])* $variant:ident => $code:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// Returns the code stored in the database and used in logs.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $code),+
                }
            }
        }

        impl ::core::str::FromStr for $name {
            type Err = $crate::codes::UnknownCode;

            fn from_str(s: &str) -> ::core::result::Result<Self, Self::Err> {
                match s {
                    $($code => Ok($name::$variant),)+
                    other => Err($crate::codes::UnknownCode { kind: $kind, value: other.to_owned() }),
                }
            }
        }

        impl ::core::fmt::Display for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
