"""The alert service (``clusterpro_alertsync``): mail reports and SNMP traps for alerts.

``clusterpro_evt`` puts every alert into a spool (:mod:`clp.alert.spool`); the alert service
routes each to the channels the ``alert`` section of clp.conf configures
(:mod:`clp.alert.settings`) and delivers it (:mod:`clp.alert.mail`, :mod:`clp.alert.trap`) with
retries (:mod:`clp.alert.delivery`). Nothing is dropped silently: an alert that cannot be
delivered is retried, then kept in ``work/alert/failed/`` with an alert saying so.
"""
