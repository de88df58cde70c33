"""Compilers from the route table to each router's configuration, and the export driver."""
