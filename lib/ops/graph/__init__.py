"""Home of the graph family (message passing and graph layers); filled by the coming papers."""
