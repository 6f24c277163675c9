"""The pure engine: catalog and customer-state types, validation and evaluation.

No I/O, no clock reads, no logging, no settings: data in, decisions out. The server and the SDK's
local evaluation run this same code.
"""
