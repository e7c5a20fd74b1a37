"""What an uploaded file is: safe names and folders, archive safety, image checks."""
