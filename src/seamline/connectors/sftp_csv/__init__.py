"""A 3PL over an SFTP file drop: order files in, shipment and inventory files out."""
