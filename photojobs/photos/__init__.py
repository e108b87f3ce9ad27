"""Photo processing, the pure core under the `process_photo` job.

- files: size, mtime, sha256, mime sniffing; I/O errors sorted into retry or permanent
- exif: exifread -> camera, lens, exposure, date with offset, GPS, orientation, all tags
- thumbnails: conversions from [thumbnails], decoded small (DCT scaling), chained, upright
- scan / store: `photos add` (files and folders), list, show, the photos table
- processing: one photo from file to row and thumbnails (`process_photo`)

Nothing here imports Pillow or exifread at module level.
"""
