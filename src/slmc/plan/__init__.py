"""Planning: lifetimes, memory offsets (greedy, and later CP-SAT), and their independent checker."""
