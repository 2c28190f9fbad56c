"""Embedded emulator of the Bitbucket container registry (crg.apkg.io).

Used by the tests and local demos; never shipped in the pipe image.
"""
