"""Ansible connection plugins (a package only so that the files ship with the project)."""
