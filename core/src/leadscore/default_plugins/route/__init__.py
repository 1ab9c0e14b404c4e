"""The default router: a band's ``[routing.<band>]`` table becomes the Route (step 7: route)."""
