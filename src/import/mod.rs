//! Bringing another system's archive into capsule, whole: read everything, plan every
//! write, judge it as the push hook will, and only then write. Nothing here prints.
//!
//! - [`cap`]: CERN Analysis Preservation's deposits, records and schemas, from a CAP
//!   server's REST API or from saved exports.

pub mod cap;
