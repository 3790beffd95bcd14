/** True when a `-config` value names an S3 object (`s3://bucket/key`) rather than a file; kept apart so checking it does not load the AWS SDK. */
export function isS3ConfigUrl(location: string): boolean {
  return location.startsWith('s3://');
}
