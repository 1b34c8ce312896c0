"""Shared code of the WhatsApp gateway: every Lambda function imports it from the common layer.

Dependencies point inward: ``http`` and handlers use ``services``; services use ``domain``, ``store`` and
``providers``; ``domain`` imports nothing of ours.
"""
