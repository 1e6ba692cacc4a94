//! Public code lists (CARC, RARC, adjustment groups, claim status, service types, place of service) as data.
