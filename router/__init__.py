"""Router: capacity model, planner and routing API (issue 3)."""
