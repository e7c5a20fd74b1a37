"""The station itself: dashboard, doctor, health, RQ dashboard, station API."""
