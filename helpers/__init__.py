"""Shared helpers of the course notebooks: runtime, data (datafiles), plot, train (sources),
classifier, evaluate, checks, nets, diffusion; student and bench are the course's tooling."""
