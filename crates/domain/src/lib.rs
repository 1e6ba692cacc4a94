//! Domain types shared by every medbill service: money, identifiers, NPI, dates, benefit math.
