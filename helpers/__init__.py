"""What the course notebooks import: runtime, data (datafiles), plot, train (sources), classifier,
evaluate, checks (stub), nets, diffusion. The course's tooling is in tools/."""
