"""Exports of a lab to other engines (containerlab, and clabernetes through it), and the
import of containerlab topologies. Built from the same plan and node kinds as the netns
backend, so an export and the native lab cannot drift apart."""
