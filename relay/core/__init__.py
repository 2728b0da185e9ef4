"""Pure parts of relay: values in, values out; no network, Redis or web framework imports."""
