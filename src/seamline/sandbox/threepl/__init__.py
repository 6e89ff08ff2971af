"""A simulated 3PL behind a real SFTP file drop: `ThreePLSimulator`."""

from seamline.sandbox.threepl.simulator import (
    Faults,
    ReceivedOrder,
    ThreePLSimulator,
    WrittenShipment,
)

__all__ = ["Faults", "ReceivedOrder", "ThreePLSimulator", "WrittenShipment"]
