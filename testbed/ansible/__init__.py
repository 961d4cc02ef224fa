"""Ansible plugins shipped with the testbed (loaded by Ansible from their directory, never
imported by the testbed itself): see `testbed.inventory.connection_plugin_dir()`."""
