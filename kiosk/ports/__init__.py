"""The devices the kiosk drives, as the core sees them.

Each module here is one port: an interface and the values it answers with.
Drivers implement them (`drivers/`), fakes stand in for them in tests, and
the configuration picks one by name (`kiosk.backends`). Nothing here imports
a driver, a screen or a library that talks to hardware.
"""
