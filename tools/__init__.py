"""The course's tooling, run by `make` and never imported by a notebook: student copies and the
notebook filter (student), the benchmark and its pages of docs/ (bench), the data and the reference
classifier ahead of a run (data, classifier). The notebooks' own code is in helpers/."""
