"""ComponentResources: one per concept the program ships (the image, the workload)."""
