"""Pictures and text renderings of topologies."""
