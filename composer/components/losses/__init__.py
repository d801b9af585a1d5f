"""Loss kinds. Each computes in at least fp32 (`fp32.at_least_fp32`); the declarations import no torch."""
