//! X12 5010 reader and writer: envelopes, typed 835/837/270/271/276/277/999/TA1, 835 balancing.
