"""A corpus of independent implementations of the platform's services, each a separate
process configured only by what ``ecom-harness env COMPONENT`` prints: a correct one of
order-svc, api-gateway and notify-svc, and deliberately broken variants of each, every
one a small, named, documented deviation (the registry is :mod:`.variants`).

Run one with ``python -m real_services VARIANT`` (``tests/`` on ``PYTHONPATH``) in the
environment ``ecom-harness env`` gives; ``tests/test_broken_services.py`` runs the four
scenarios with each swapped in and checks which expectations catch it.
"""
